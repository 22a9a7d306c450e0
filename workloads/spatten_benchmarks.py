"""The SpAtten paper's benchmarks as data (paper section V-A; docs/spatten.md §Workloads): shared by the paper
reproduction (reports) and the GPU suite (front), so neither reaches into the other for its definitions."""

from __future__ import annotations

#: Average dev-set lengths in WordPiece tokens incl. [CLS]/[SEP]. The paper uses each task's average but does
#: not print it; these are our estimates from the public dev sets' typical lengths (see docs/spatten.md).
TASK_LENGTHS: dict[str, int] = {
    "CoLA": 11, "SST-2": 25, "MRPC": 53, "STS-B": 31, "QQP": 30, "MNLI-m": 39, "MNLI-mm": 40, "QNLI": 50,
    "RTE": 68, "SQuAD1.1": 160, "SQuAD2.0": 160,
}
GPT2_DATASETS: tuple[str, ...] = ("WikiText-2", "WikiText-103", "PTB", "1BW")
#: GPT-2 runs: a 992-token prompt, then 32 generated tokens (context 993..1024).
PROMPT, GENERATED = 992, 32
