/* placeholder until the export command lands */
#include <stdio.h>
#include "cli/commands.h"
int tl_cmd_export(int argc, char **argv) {
  (void)argc; (void)argv;
  fprintf(stderr, "tlens export: error: this build does not include the export command yet\n");
  return 1;
}
