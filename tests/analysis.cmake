# analysis: prediction trajectories and lens generation (tlens trajectory, tlens generate).
# numpy's selection algorithms reproduced tie for tie (against numpy itself), every
# statistic / label / hover string of tuned-lens 0.2.0's PredictionTrajectory on the
# golden/trajectory fixtures plus a numpy re-implementation of its formulas, and the
# one-line errors of bad inputs; trajectory.html in headless Chromium; greedy
# TunedLens.generate ids through every golden layer; Unembed.invert within 1e-3 of its KL.
add_executable(analysis_npsort_tool ${CMAKE_CURRENT_SOURCE_DIR}/analysis/npsort_tool.c)
target_link_libraries(analysis_npsort_tool PRIVATE tlens_lib)
target_include_directories(analysis_npsort_tool PRIVATE ${CMAKE_SOURCE_DIR}/src)
tlens_sh_test(analysis_npsort analysis/test_npsort.sh)
tlens_sh_test(trajectory_golden analysis/test_trajectory_golden.sh)
tlens_sh_test(trajectory_errors analysis/test_trajectory_errors.sh)
tlens_sh_test(trajectory_html analysis/test_trajectory_html.sh)
set_tests_properties(trajectory_html PROPERTIES SKIP_RETURN_CODE 77)
tlens_sh_test(generate_golden analysis/test_generate_golden.sh)
tlens_sh_test(invert_golden analysis/test_invert.sh)
# ablations through the sub-layer hook (tests/analysis/test_ablate.c), on every golden
# family: zeroed layer = identity on the stream, swap with itself = clean bit for bit,
# mean = clean + (mean - out) by hand, bad --ablate specs; and the CLI's flags.
add_executable(analysis_ablate ${CMAKE_CURRENT_SOURCE_DIR}/analysis/test_ablate.c)
target_link_libraries(analysis_ablate PRIVATE tlens_lib)
target_include_directories(analysis_ablate PRIVATE ${CMAKE_SOURCE_DIR}/src)
foreach(fam gpt2 gpt_neox llama gpt_neo gptj opt bloom gemma qwen2 phi3 phi stablelm falcon_old falcon_new olmo)
  add_test(NAME analysis_ablate_${fam} COMMAND analysis_ablate ${TLENS_FIXTURES}/golden/${fam}/model)
  set_tests_properties(analysis_ablate_${fam} PROPERTIES ENVIRONMENT "${TLENS_TEST_ENV}" TIMEOUT 300)
endforeach()
tlens_sh_test(analysis_ablate_cli analysis/test_ablate_cli.sh)
# sub-layer streams (--residual) on every golden family: resid_post[l] == resid_pre[l+1],
# resid_mid == resid_pre + attn_out bit for bit, resid_mid refused where there is none,
# with ablations (tests/analysis/test_residual.c); then the CLI on the gpt2 golden against
# a numpy forward (HF's hidden states first) and the reference's formulas.
add_executable(analysis_residual ${CMAKE_CURRENT_SOURCE_DIR}/analysis/test_residual.c)
target_link_libraries(analysis_residual PRIVATE tlens_lib)
target_include_directories(analysis_residual PRIVATE ${CMAKE_SOURCE_DIR}/src)
foreach(fam gpt2 gpt_neox llama gpt_neo gptj opt bloom gemma qwen2 phi3 phi stablelm falcon_old falcon_new olmo)
  add_test(NAME analysis_residual_${fam} COMMAND analysis_residual ${TLENS_FIXTURES}/golden/${fam}/model)
  set_tests_properties(analysis_residual_${fam} PROPERTIES ENVIRONMENT "${TLENS_TEST_ENV}" TIMEOUT 300)
endforeach()
tlens_sh_test(trajectory_residual analysis/test_residual_cli.sh $<TARGET_FILE:analysis_residual>)
# `make bench`: a 2048-token trajectory with every statistic on a synthetic pythia-70m-shaped
# model, time and peak RSS beside the reference's full-tensor approach in PyTorch (skipped,
# saying so, without a python3 that has torch).
add_custom_target(run_bench_trajectory
                  COMMAND ${CMAKE_COMMAND} -E env "TLENS=$<TARGET_FILE:tlens>" "PYTHON=${PYTHON}"
                          bash ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_trajectory.sh
                  USES_TERMINAL VERBATIM)
add_dependencies(run_bench_trajectory tlens)
add_dependencies(bench run_bench_trajectory)
# the demo lens (the demo's training settings, cut short) beats the logit lens on top-1
# agreement with the model's output at every layer of the last half, on a held-out story
tlens_sh_test(trajectory_demo analysis/test_trajectory_demo.sh)
set_tests_properties(trajectory_demo PROPERTIES TIMEOUT 900) # trains a short lens first
