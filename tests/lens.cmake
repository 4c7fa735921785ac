# Lens math (translators, fused training step, evaluation) and its GEMM kernels.
tlens_c_test(test_lens_golden lens/test_lens_golden.c)
tlens_c_test(test_lens_grad lens/test_lens_grad.c)
tlens_c_test(test_lens_gemm lens/test_lens_gemm.c)
set_tests_properties(test_lens_gemm PROPERTIES SKIP_RETURN_CODE 77) # CPU without AVX-512 (BF16)
tlens_bench(bench_lens lens/bench_lens.c)
# The same micro-step in PyTorch, run by `make bench` beside bench_lens for a same-machine
# comparison (the system's python3 that has torch; it says so and exits 0 without it).
add_custom_target(run_bench_lens_torch
                  COMMAND sh -c "for p in \"$PYTHON\" python3 /usr/bin/python3; do [ -n \"$p\" ] && $p -c 'import torch' 2>/dev/null && exec $p \"$0\"; done; echo 'bench_lens_torch: no python3 with torch; skipped'"
                          ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_lens_torch.py
                  USES_TERMINAL VERBATIM)
add_dependencies(bench run_bench_lens_torch)
