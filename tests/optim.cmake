# Optimizers (SGD-Nesterov, Adam with amsgrad), the learning-rate schedule and gradient clipping.
tlens_c_test(test_optim optim/test_optim.c)
