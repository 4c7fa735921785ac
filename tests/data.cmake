# data module: corpus reading, chunking, token cache, sampler
tlens_c_test(test_data_corpus data/test_data_corpus.c)
tlens_c_test(test_data_sampler data/test_data_sampler.c)
tlens_c_test(test_data_chunks data/test_data_chunks.c)
tlens_c_test(test_data_cache data/test_data_cache.c)
tlens_sh_test(data_dataset_shuffle data/test_dataset_shuffle.sh)
tlens_sh_test(data_multi_file data/test_multi_file.sh)
