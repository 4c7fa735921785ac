# Command-line compatibility with the reference CLI.
tlens_sh_test(cli_reference_flags cli/test_reference_flags.sh)
