/* placeholder until the eval command lands */
#include <stdio.h>
#include "cli/commands.h"
int tl_cmd_eval(int argc, char **argv) {
  (void)argc; (void)argv;
  fprintf(stderr, "tlens eval: error: this build does not include the eval command yet\n");
  return 1;
}
