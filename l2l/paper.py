"""The paper's standard numbers, named once (TensorFlow-free, so that the chapters' parameters and the chapter layer
can both read them): the meta-training budget every budget is stated against, and how a verdict says its budget."""

PAPER_EPOCHS = 10000  # the DeepMind code's meta-training budget, the denominator every budget is stated against


def budget_words(meta_epochs, total=PAPER_EPOCHS):
    """How a verdict names its budget: "at 200 of the DeepMind code's 10,000 meta-training epochs (2%)"."""
    return f"at {meta_epochs:,} of the DeepMind code's {total:,} meta-training epochs ({100 * meta_epochs / total:.3g}%)"
