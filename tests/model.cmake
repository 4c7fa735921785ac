# Model module: golden forward passes against HF transformers, greedy decoding of a
# real model, loader error paths, the synth -> info -> hidden round trip, and the
# forward benchmark.
foreach(arch gpt2 gpt_neox llama gpt_neo gptj opt bloom gemma qwen2 phi3 phi stablelm falcon_new falcon_old olmo)
  tlens_c_test(model_golden_${arch} model/test_model_golden.c golden/${arch}/model golden/${arch}/forward.safetensors)
endforeach()
# the lens goldens (tuned-lens's math on each family's unembedding) for the families
# beyond tests/test_lens_golden.c's gpt2, gpt_neox and llama
foreach(arch gpt_neo gptj opt bloom gemma qwen2 phi3 phi stablelm falcon_new falcon_old olmo)
  tlens_c_test(model_lens_${arch} model/test_family_lens.c ${arch})
endforeach()
tlens_c_test(model_golden_stories260k model/test_model_golden.c models/stories260k models/stories260k/forward.safetensors)
tlens_c_test(model_greedy_stories260k model/test_model_greedy.c)
# hub-style folders made from the fixtures: tied matrix under either name, no base-model prefix, config quirks
tlens_c_test(model_folders model/test_model_folders.c)
# hub ids through a Hugging Face cache built by hand (refs, snapshots, blobs)
tlens_c_test(model_resolve model/test_model_resolve.c)
# helper that writes corrupted safetensors copies for the error-path test
add_executable(model_st_edit ${CMAKE_CURRENT_SOURCE_DIR}/model/st_edit.c)
target_link_libraries(model_st_edit PRIVATE PkgConfig::CJSON)
tlens_sh_test(model_errors model/test_model_errors.sh)
tlens_c_test(model_synth_roundtrip model/test_model_synth.c)
tlens_bench(bench_model_forward model/bench_model_forward.c)
tlens_c_test(model_backend_ops model/test_model_backend.c)
tlens_c_test(model_sharded model/test_model_sharded.c)
tlens_c_test(model_sliced model/test_model_sliced.c)
# pytorch_model.bin folders written by python3-torch (single, 2 shards, bf16/fp16, refused
# pickles, legacy format) and held precision against torch-rounded weights (model_precision)
add_executable(model_precision ${CMAKE_CURRENT_SOURCE_DIR}/model/test_model_precision.c)
target_link_libraries(model_precision PRIVATE tlens_lib)
target_include_directories(model_precision PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR})
tlens_sh_test(model_bin model/test_model_bin.sh)
set_tests_properties(model_bin PROPERTIES SKIP_RETURN_CODE 77)
# loading benchmark (make bench): 4 safetensors shards and a pytorch_model.bin of one
# synthetic model, load time and peak RSS per GB of weights (tests/bench/bench_load.sh)
add_executable(bench_load EXCLUDE_FROM_ALL ${CMAKE_SOURCE_DIR}/tests/bench/bench_load.c)
target_link_libraries(bench_load PRIVATE tlens_lib)
add_custom_target(run_bench_load COMMAND ${CMAKE_COMMAND} -E env "TLENS=$<TARGET_FILE:tlens>" "BENCH_LOAD=$<TARGET_FILE:bench_load>"
                  "WORK=${CMAKE_CURRENT_BINARY_DIR}/work/bench_load" bash ${CMAKE_SOURCE_DIR}/tests/bench/bench_load.sh
                  DEPENDS bench_load tlens USES_TERMINAL)
add_dependencies(bench run_bench_load)
