/* Preemption requests: SIGUSR1 (Slurm's "--signal=USR1@N" warning, or a
 * preemption with preempt_send_user_signal) and SIGTERM (requeue, time limit,
 * scancel) only raise a flag here. The training loop polls it at step boundaries,
 * agrees on it across ranks, checkpoints and `tlens train` exits with status 3. A
 * handler may only touch lock-free atomics, so it does nothing else.
 *
 * SIGINT (Ctrl-C) asks for the same stop, and says so on stderr; a second
 * SIGINT ends the process at once, without a checkpoint. Where SIGINT was
 * ignored when training started (a background job of a non-interactive shell),
 * it stays ignored. */
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "tlens/core.h"
#include "tlens/dist.h"

static atomic_int preempt_signal; /* 0, or the first signal number received */

static void on_preempt_signal(int sig) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&preempt_signal, &expected, sig)) {
    if (sig == SIGINT) {
      static const char msg[] = "\ntlens: interrupted: finishing this step and writing a checkpoint "
                                "(Ctrl-C again to quit without one)\n";
      ssize_t w = write(2, msg, sizeof msg - 1);
      (void)w;
    }
  } else if (sig == SIGINT) { /* the second Ctrl-C: the default action, now */
    signal(SIGINT, SIG_DFL);
    raise(SIGINT);
  }
}

int tl_preempt_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_preempt_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART; /* interrupted reads/writes resume instead of failing */
  if (sigaction(SIGUSR1, &sa, NULL) != 0) return tl_fail("signals: cannot install the SIGUSR1 handler");
  if (sigaction(SIGTERM, &sa, NULL) != 0) return tl_fail("signals: cannot install the SIGTERM handler");
  struct sigaction old;
  if (sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN && sigaction(SIGINT, &sa, NULL) != 0)
    return tl_fail("signals: cannot install the SIGINT handler");
  return 0;
}

bool tl_preempt_requested(void) { return atomic_load(&preempt_signal) != 0; }
int tl_preempt_signal(void) { return atomic_load(&preempt_signal); }
void tl_preempt_clear(void) { atomic_store(&preempt_signal, 0); }
