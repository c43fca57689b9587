"""The paper's human study of mask quality (§7.1, §E, §G), Qt-free.

A study is a folder: `study.json` (conditions, items, rating jobs; written once when
the study is built) and `ratings/<participant>.json` (one file per participant,
rewritten atomically after every rating). Participants rate each job's mask from
1 (nonsense) to 10 (pixel-perfect) without knowing which condition (model, ground
truth, ...) made it, in an order of their own (`participant_order`).

Modules: `model` (the study and its file), `sheets` (the participants' orders, their
sheets and the queue), `sources` (images and ground truth read on demand), `build` (making
a study from a COCO dataset and models), `create` (what `study create` and the app's New
study dialog share around `build`: models opened and named, new-or-empty folders),
`external` (prompts out and masks in, for models that run elsewhere), `stats` (means with
95% CI, paired t-test, paired bootstrap), `plots` (figures), `views` (the five views of
§G).
"""
