# fuzz: one libFuzzer target per parser (tests/fuzz/fuzz_*.c, described in fuzz.h).
#
# Every build: each target is also built with a small main() that replays the files
# given to it, and ctest replays tests/fuzz/regress/<target>/ (the minimised inputs of
# every crash found so far) plus a few valid files through it: fuzz_replay_<target>.
#
# -DTLENS_FUZZ=ON (needs clang with libFuzzer: Debian's clang + libclang-rt-14-dev):
# the library is instrumented with -fsanitize=fuzzer-no-link,address,undefined, each
# target is linked with -fsanitize=fuzzer,address,undefined as fuzz_<target>, and a
# test with label `fuzz` runs each one for TLENS_FUZZ_SECONDS (seed corpora are copied
# from the fixtures into the build tree at configure time; what the fuzzer adds goes to
# fuzz/corpus/<target>, crashes to fuzz/artifacts/<target>/). To fuzz by hand:
#   build-fuzz/tests/fuzz_<target> build-fuzz/tests/fuzz/corpus/<target> build-fuzz/tests/fuzz/seeds/<target>
# CI: ctest -L "^fuzz$" (every target for TLENS_FUZZ_SECONDS); the replays carry label `replay`.
option(TLENS_FUZZ "Build the libFuzzer targets (clang only; instruments the library)" OFF)
set(TLENS_FUZZ_SECONDS 30 CACHE STRING "seconds each `fuzz`-labelled test fuzzes its target")

set(TLENS_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
if(TLENS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "TLENS_FUZZ=ON needs clang (configure with CC=clang)")
  endif()
  target_compile_options(tlens_lib PRIVATE -fsanitize=fuzzer-no-link ${TLENS_FUZZ_SAN})
  # whatever links the instrumented library needs the sanitizer runtimes
  target_link_options(tlens_lib INTERFACE -fsanitize=address,undefined)
endif()

set(TLENS_FUZZ_REGRESS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/regress)
set(TLENS_FUZZ_WORK ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
set(TLENS_FUZZ_ENV "${TLENS_TEST_ENV};ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/lsan.supp;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")

# tlens_fuzz_target(NAME [SEEDS file...] [MADE folder] [REQUIRES fixture] [DICT file])
#   SEEDS: fixture files (absolute) replayed by the replay test and copied as seeds;
#   MADE: a folder of seeds a setup test writes (fixture REQUIRES) instead;
#   DICT: a libFuzzer dictionary (words the mutations insert).
function(tlens_fuzz_target name)
  cmake_parse_arguments(F "" "MADE;REQUIRES;DICT" "SEEDS" ${ARGN})
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${name}.c)
  add_executable(fuzz_${name}_replay ${src})
  target_link_libraries(fuzz_${name}_replay PRIVATE tlens_lib)
  target_include_directories(fuzz_${name}_replay PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
  target_compile_definitions(fuzz_${name}_replay PRIVATE TLENS_FIXTURES="${TLENS_FIXTURES}")
  add_test(NAME fuzz_replay_${name} COMMAND fuzz_${name}_replay ${TLENS_FUZZ_REGRESS}/${name} ${F_SEEDS} ${F_MADE})
  set_tests_properties(fuzz_replay_${name} PROPERTIES ENVIRONMENT "${TLENS_FUZZ_ENV}" TIMEOUT 300 LABELS replay)
  if(F_REQUIRES)
    set_tests_properties(fuzz_replay_${name} PROPERTIES FIXTURES_REQUIRED ${F_REQUIRES})
  endif()
  if(NOT TLENS_FUZZ)
    return()
  endif()
  add_executable(fuzz_${name} ${src})
  target_link_libraries(fuzz_${name} PRIVATE tlens_lib)
  target_include_directories(fuzz_${name} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
  target_compile_definitions(fuzz_${name} PRIVATE TLENS_LIBFUZZER=1 TLENS_FIXTURES="${TLENS_FIXTURES}")
  target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer ${TLENS_FUZZ_SAN})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  set(dict)
  if(F_DICT)
    set(dict -dict=${F_DICT})
  endif()
  # seeds: the fixture files, each under a name made from its path (many are config.json)
  set(seeds ${TLENS_FUZZ_WORK}/seeds/${name})
  file(MAKE_DIRECTORY ${seeds} ${TLENS_FUZZ_WORK}/corpus/${name} ${TLENS_FUZZ_WORK}/artifacts/${name})
  foreach(f ${F_SEEDS})
    file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR}/.. ${f})
    string(REPLACE "/" "_" flat ${rel})
    configure_file(${f} ${seeds}/${flat} COPYONLY)
  endforeach()
  add_test(NAME fuzz_${name} COMMAND fuzz_${name} -max_total_time=${TLENS_FUZZ_SECONDS} -timeout=5 -rss_limit_mb=2048
           -print_final_stats=1 ${dict} -artifact_prefix=${TLENS_FUZZ_WORK}/artifacts/${name}/
           ${TLENS_FUZZ_WORK}/corpus/${name} ${seeds} ${F_MADE})
  set_tests_properties(fuzz_${name} PROPERTIES ENVIRONMENT "${TLENS_FUZZ_ENV}" TIMEOUT 900 LABELS fuzz)
  if(F_REQUIRES)
    set_tests_properties(fuzz_${name} PROPERTIES FIXTURES_REQUIRED ${F_REQUIRES})
  endif()
endfunction()

set(FX ${TLENS_FIXTURES})
set(TLENS_FUZZ_FAMILIES bloom falcon_new falcon_old gemma gpt2 gpt_neo gpt_neox gptj llama olmo opt phi phi3 qwen2 stablelm)
set(model_configs ${FX}/models/stories260k/config.json)
set(lens_configs ${FX}/golden/llama/lens_bf16/config.json ${FX}/golden/trajectory/stories260k/lens/config.json)
foreach(fam ${TLENS_FUZZ_FAMILIES})
  list(APPEND model_configs ${FX}/golden/${fam}/model/config.json)
  list(APPEND lens_configs ${FX}/golden/${fam}/lens/config.json)
endforeach()

tlens_fuzz_target(safetensors SEEDS ${FX}/golden/trajectory/llama/invert.safetensors
                  ${FX}/golden/trajectory/stories260k/invert.safetensors ${FX}/data/chunks_gpt2_pile_128.safetensors)
tlens_fuzz_target(model_config SEEDS ${model_configs})
tlens_fuzz_target(tokenizer SEEDS ${FX}/tokenizers/stories260k/tokenizer.json)
tlens_fuzz_target(pretok SEEDS ${FX}/data/chunks_gpt2_pile_128.safetensors)
tlens_fuzz_target(corpus SEEDS ${FX}/data/pile_text.jsonl ${FX}/data/tinystories_valid_head.jsonl.zst)
tlens_fuzz_target(lens_config SEEDS ${lens_configs})
tlens_fuzz_target(params_pt SEEDS ${FX}/golden/llama/lens/params.pt ${FX}/golden/llama/lens_bf16/params.pt
                  ${FX}/golden/llama/lens_fp16/params.pt)
tlens_fuzz_target(args DICT ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/args.dict)
tlens_fuzz_target(config_json SEEDS ${CMAKE_SOURCE_DIR}/configs/eval.json ${CMAKE_SOURCE_DIR}/configs/pythia-160m.json
                  ${CMAKE_SOURCE_DIR}/configs/stories260k-demo.json DICT ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/args.dict)

# seeds that are made, not copied: a sample checkpoint, and the index of a sharded model
set(made ${TLENS_FUZZ_WORK}/made)
add_test(NAME fuzz_seed_ckpt COMMAND test_ckpt --sample ${made}/ckpt)
add_test(NAME fuzz_seed_st_index COMMAND fuzz_st_index_replay --write-seed ${made}/st_index)
set_tests_properties(fuzz_seed_ckpt PROPERTIES FIXTURES_SETUP fuzz_ckpt_seed ENVIRONMENT "${TLENS_TEST_ENV}")
set_tests_properties(fuzz_seed_st_index PROPERTIES FIXTURES_SETUP fuzz_st_index_seed ENVIRONMENT "${TLENS_TEST_ENV}")
tlens_fuzz_target(ckpt MADE ${made}/ckpt REQUIRES fuzz_ckpt_seed)
tlens_fuzz_target(st_index MADE ${made}/st_index REQUIRES fuzz_st_index_seed)
if(TLENS_SANITIZE OR TLENS_FUZZ)
  # Open MPI's unloaded plugins leak at exit in frames LeakSanitizer cannot name (see ckpt.cmake)
  set_tests_properties(fuzz_seed_ckpt PROPERTIES ENVIRONMENT_MODIFICATION "ASAN_OPTIONS=set:detect_leaks=0")
endif()

# a rule the fuzz targets cannot check by themselves: a lens holding NaN or Inf is refused
tlens_c_test(fuzz_lens_nonfinite fuzz/test_lens_nonfinite.c ${CMAKE_CURRENT_BINARY_DIR}/work/fuzz_lens_nonfinite)
# ... and --config files naming one option twice, or integers no long holds
tlens_c_test(fuzz_config_rejects fuzz/test_config_rejects.c ${CMAKE_CURRENT_BINARY_DIR}/work/fuzz_config_rejects)
target_include_directories(fuzz_config_rejects PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
