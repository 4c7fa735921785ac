# Training and evaluation end to end: rank-count invariance (mpirun), exact resume after
# signals / kill -9 / corrupt checkpoints / elastic world sizes, the stories260k
# acceptance run with eval, and CLI error paths.
add_executable(cmp_lens ${CMAKE_CURRENT_SOURCE_DIR}/train/cmp_lens.c)
target_link_libraries(cmp_lens PRIVATE tlens_lib)
add_executable(ckpt_tamper ${CMAKE_CURRENT_SOURCE_DIR}/train/ckpt_tamper.c)
target_link_libraries(ckpt_tamper PRIVATE tlens_lib)
foreach(cfg "1" "2" "4" "1;--fsdp" "2;--fsdp" "4;--fsdp" "2;--zero" "4;--fsdp;--zero"
        "2;--lens_precision;bf16")
  string(REPLACE ";" "" tname "train_ranks_${cfg}")
  string(REPLACE "--" "_" tname "${tname}")
  string(REPLACE "_lens_precision" "_" tname "${tname}")
  tlens_sh_test(${tname} train/test_train_ranks.sh ${cfg})
endforeach()
tlens_sh_test(train_resume train/test_train_resume.sh)
tlens_sh_test(train_stories_eval train/test_train_stories.sh)
tlens_sh_test(train_errors train/test_train_errors.sh)
foreach(m gpt2 gpt_neox llama)
  tlens_sh_test(train_golden_${m} train/test_train_golden.sh ${m})
endforeach()
tlens_sh_test(train_fsdp_fault train/test_train_fsdp_fault.sh)
tlens_sh_test(special_files train/test_special_files.sh)
tlens_sh_test(train_misuse train/test_misuse.sh)
tlens_sh_test(train_ckpt_trust train/test_ckpt_trust.sh)
