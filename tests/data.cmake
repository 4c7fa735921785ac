# data module: corpus reading, chunking, token cache, sampler
tlens_c_test(test_data_corpus test_data_corpus.c)
tlens_c_test(test_data_sampler test_data_sampler.c)
tlens_c_test(test_data_chunks test_data_chunks.c)
tlens_c_test(test_data_cache test_data_cache.c)
