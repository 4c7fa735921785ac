# cuda: the CUDA backend checked op by op against the CPU backend, and the NCCL
# collectives under mpirun. Registered only in builds that have the CUDA backend;
# on a machine without a GPU the programs exit 77, which ctest reports as skipped.
if(TARGET tlens_cuda)
  # The project-wide warning and sanitizer flags are gcc options that nvcc
  # rejects: keep them for the C sources of tlens_cuda only. And the NCCL code
  # includes <mpi.h> through tlens/dist.h.
  get_target_property(_tlens_cuda_opts tlens_cuda COMPILE_OPTIONS)
  if(_tlens_cuda_opts)
    list(TRANSFORM _tlens_cuda_opts REPLACE "^(.+)$" "$<$<COMPILE_LANGUAGE:C>:\\1>")
    set_property(TARGET tlens_cuda PROPERTY COMPILE_OPTIONS ${_tlens_cuda_opts})
  endif()
  target_link_libraries(tlens_cuda PUBLIC MPI::MPI_C)
  target_compile_definitions(tlens_cuda PUBLIC TLENS_HAVE_CUDA=1)

  tlens_c_test(test_cuda_ops cuda/test_cuda_ops.c)
  set_tests_properties(test_cuda_ops PROPERTIES SKIP_RETURN_CODE 77)

  add_executable(test_cuda_nccl ${CMAKE_CURRENT_SOURCE_DIR}/cuda/test_cuda_nccl.c)
  target_link_libraries(test_cuda_nccl PRIVATE tlens_lib)
  target_include_directories(test_cuda_nccl PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
  add_test(NAME cuda_nccl_np2 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS}
           $<TARGET_FILE:test_cuda_nccl> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(cuda_nccl_np2 PROPERTIES ENVIRONMENT "${TLENS_TEST_ENV}" TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
