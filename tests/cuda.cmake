# cuda: the CUDA backend checked op by op against the CPU backend, and the NCCL
# collectives under mpirun. Registered only in builds that have the CUDA backend;
# on a machine without a GPU the programs exit 77, which ctest reports as skipped.
if(TARGET tlens_cuda)
  # Until the top-level CMakeLists does it: the NCCL code includes <mpi.h>
  # through tlens/dist.h and needs TLENS_HAVE_CUDA for src/dist/backend.h.
  target_link_libraries(tlens_cuda PUBLIC MPI::MPI_C)
  target_compile_definitions(tlens_cuda PUBLIC TLENS_HAVE_CUDA=1)
  # tlens_lib was created before CMAKE_CUDA_ARCHITECTURES was set; CMake needs
  # the list on every target that links CUDA code.
  set_property(TARGET tlens_lib PROPERTY CUDA_ARCHITECTURES ${CMAKE_CUDA_ARCHITECTURES})

  tlens_c_test(test_cuda_ops cuda/test_cuda_ops.c)
  set_tests_properties(test_cuda_ops PROPERTIES SKIP_RETURN_CODE 77)

  add_executable(test_cuda_nccl ${CMAKE_CURRENT_SOURCE_DIR}/cuda/test_cuda_nccl.c)
  target_link_libraries(test_cuda_nccl PRIVATE tlens_lib)
  target_include_directories(test_cuda_nccl PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
  add_test(NAME cuda_nccl_np2 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS}
           $<TARGET_FILE:test_cuda_nccl> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(cuda_nccl_np2 PROPERTIES ENVIRONMENT "${TLENS_TEST_ENV}" TIMEOUT 120 SKIP_RETURN_CODE 77)
endif()
