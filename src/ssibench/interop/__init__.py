"""DeepInverse's file formats, read and written against their layout (DeepInverse stays out).

SSIBench (Wang, McDonagh, Davies, 2025) was built on DeepInverse, so its users hold DeepInverse
files: simple data sets (``save_simple_dataset``), ``Trainer`` checkpoints and ``generate_dataset``
measurement files. Each module here adapts one format to ssibench's own (a source, a checkpoint, a
measurement store) or back, from the files' documented layout alone.
"""
