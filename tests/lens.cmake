# Lens math (translators, fused training step, evaluation) and optimizers.
tlens_c_test(test_lens_golden test_lens_golden.c)
tlens_c_test(test_lens_grad test_lens_grad.c)
tlens_c_test(test_optim test_optim.c)
tlens_bench(bench_lens bench_lens.c)
