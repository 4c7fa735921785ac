# Lens math (translators, fused training step, evaluation), its GEMM kernels, and optimizers.
tlens_c_test(test_lens_golden test_lens_golden.c)
tlens_c_test(test_lens_grad test_lens_grad.c)
tlens_c_test(test_lens_gemm test_lens_gemm.c)
set_tests_properties(test_lens_gemm PROPERTIES SKIP_RETURN_CODE 77) # CPU without AVX-512 (BF16)
tlens_c_test(test_optim test_optim.c)
tlens_bench(bench_lens bench_lens.c)
