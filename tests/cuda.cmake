# cuda: the CUDA module loader (every build); the backend checked op by op against the
# CPU backend and the NCCL collectives under mpirun, in builds with the CUDA backend:
# on a machine without a GPU the programs exit 77, which ctest reports as skipped.
tlens_sh_test(cuda_module cuda/test_cuda_module.sh)
if(TARGET tlens_cuda)
  tlens_c_test(test_cuda_ops cuda/test_cuda_ops.c)
  tlens_link_cuda_module(test_cuda_ops)
  set_tests_properties(test_cuda_ops PROPERTIES SKIP_RETURN_CODE 77)

  add_executable(test_cuda_nccl ${CMAKE_CURRENT_SOURCE_DIR}/cuda/test_cuda_nccl.c)
  target_link_libraries(test_cuda_nccl PRIVATE tlens_lib)
  tlens_link_cuda_module(test_cuda_nccl)
  target_include_directories(test_cuda_nccl PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
  add_test(NAME cuda_nccl_np2 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS}
           $<TARGET_FILE:test_cuda_nccl> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(cuda_nccl_np2 PROPERTIES ENVIRONMENT "${TLENS_TEST_ENV}" TIMEOUT 120 SKIP_RETURN_CODE 77)

  tlens_bench(bench_cuda_ops cuda/bench_cuda_ops.c)
  tlens_link_cuda_module(bench_cuda_ops)
endif()
