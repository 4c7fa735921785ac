# Tokenizer: HF goldens, error paths, the tokenize command; benchmark.
tlens_c_test(test_tokenizer_golden tokenizer/test_tokenizer_golden.c)
tlens_c_test(test_tokenizer_errors tokenizer/test_tokenizer_errors.c)
tlens_sh_test(test_tokenizer_cli tokenizer/test_tokenizer_cli.sh)
tlens_bench(bench_tokenizer bench/bench_tokenizer.c)
# tokenize --tokens: offsets worked by hand, and against HF tokenizers (npm) when present
tlens_sh_test(test_token_offsets tokenizer/test_token_offsets.sh)
