import pandas as pd

import stage  # noqa: F401
from cifarflow.runlog import logged

with logged(snakemake.log[0]):
    from cifarflow.select.questions import answer_questions

    answers = answer_questions(snakemake.params.questions, pd.read_csv(snakemake.input.pairs))
    answers.to_csv(snakemake.output.questions, index=False)
    print(answers[["claim", "variant", "other", "expected", "verdict", "outcome"]].to_string(index=False))
