"""Parity of ssibench's losses with DeepInverse 0.5.0 (run by ``benchmarks/parity_deepinv.py``).

* :mod:`parity.env` imports DeepInverse beside a CPU torch (the torchvision shim);
* :mod:`parity.common` builds the shared data, the operator pairs and the model pair, and compares;
* :mod:`parity.steps` computes one training objective as each library's trainer does;
* :mod:`parity.replay` records ssibench's random draws and replays them on the DeepInverse side;
* :mod:`parity.ssibench_reference` restates SSIBench's own terms on DeepInverse's classes;
* :mod:`parity.cases_splitting`, :mod:`parity.cases_equivariant`, :mod:`parity.cases_noise`,
  :mod:`parity.cases_other`: one comparison per method (and per operator and mask sampler);
* :mod:`parity.report`: the verdicts, the table and its summary line.
"""
