# Command-line compatibility with the reference CLI.
tlens_sh_test(cli_reference_flags cli/test_reference_flags.sh)
# tlens hidden from safetensors ids, tokenize's JSON and --text: the same file
tlens_sh_test(cli_hidden_inputs cli/test_hidden_inputs.sh)
