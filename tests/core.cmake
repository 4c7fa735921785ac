# core: hashing, dtype conversion, safetensors reader/writer, option parser
tlens_c_test(test_core core/test_core.c)
