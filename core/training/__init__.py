"""What every training loop shares, below the families that train (MNIST's UNet, the 2D lab's
MLP): the first weights from a seed, the learning rate's cosine, one optimizer step, the losses of
a window of iterations, the training clock, the weights' moving average and the optimizer's state
as safetensors."""
