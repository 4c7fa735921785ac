# dist: the communicator, run alone (MPI singleton) and under mpirun with 2 and 4
# ranks (4 oversubscribes a 2-core machine). Checked against hand-computed values.
add_executable(test_dist ${CMAKE_CURRENT_SOURCE_DIR}/dist/test_dist.c)
target_link_libraries(test_dist PRIVATE tlens_lib)
target_include_directories(test_dist PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})

add_test(NAME dist_np1 COMMAND test_dist 1)
add_test(NAME dist_np2 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 ${MPIEXEC_PREFLAGS}
         $<TARGET_FILE:test_dist> ${MPIEXEC_POSTFLAGS} 2)
add_test(NAME dist_np4 COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 4 --oversubscribe ${MPIEXEC_PREFLAGS}
         $<TARGET_FILE:test_dist> ${MPIEXEC_POSTFLAGS} 4)
set_tests_properties(dist_np1 dist_np2 dist_np4 PROPERTIES ENVIRONMENT "${TLENS_TEST_ENV}" TIMEOUT 120)
if(TLENS_SANITIZE)
  # Open MPI's unloaded plugins leak at exit, in frames LeakSanitizer cannot name
  # or suppress; address and undefined-behaviour checks stay on.
  set_tests_properties(dist_np1 dist_np2 dist_np4 PROPERTIES ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=set:detect_leaks=0")
endif()
# Peak memory per rank with and without --fsdp (`make bench`).
add_custom_target(run_bench_fsdp_memory
                  COMMAND ${CMAKE_COMMAND} -E env "TLENS=$<TARGET_FILE:tlens>" "FIXTURES=${TLENS_FIXTURES}"
                          "MPIEXEC=${MPIEXEC_EXECUTABLE}" bash ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_fsdp_memory.sh
                  DEPENDS tlens USES_TERMINAL)
add_dependencies(bench run_bench_fsdp_memory)
