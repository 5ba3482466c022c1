"""The paper's standard numbers, named once (TensorFlow-free, so that the chapters' parameters and the chapter layer
can both read them): the meta-training budget every budget is stated against, and how a verdict says its budget."""

PAPER_EPOCHS = 10000  # the DeepMind code's meta-training budget, the denominator every budget is stated against
# The LSTM's settings (l2l.learned_optimizer.LSTMConfig fields) as the paper's text gives them, and as the DeepMind
# code runs each problem: every recipe builds its LSTMConfig from these (equal configs: run keys do not move).
PAPER_LSTM = {"hidden": 20, "layers": 2, "preprocess_p": 10.0, "scale": 0.1}  # section 2.1 and appendix A: LogAndSign p = 10, output x 0.1
DEEPMIND_LSTM = {
    "mnist": {**PAPER_LSTM, "preprocess_p": 5.0, "scale": 0.01},  # the code's MNIST: p = 5, output x 0.01
    "quadratic": {**PAPER_LSTM, "preprocess_p": 0.0, "scale": 1.0},  # the code's quadratics: raw gradients, output x 1
}
# The paper's MNIST meta-training (section 3.2): 100-step runs, truncated every 20 steps, Adam at 1e-3 on the LSTM.
PAPER_MNIST_META = {"horizon": 100, "unroll": 20, "meta_lr": 1e-3}


def budget_words(meta_epochs, total=PAPER_EPOCHS):
    """How a verdict names its budget: "at 200 of the DeepMind code's 10,000 meta-training epochs (2%)"."""
    return f"at {meta_epochs:,} of the DeepMind code's {total:,} meta-training epochs ({100 * meta_epochs / total:.3g}%)"
