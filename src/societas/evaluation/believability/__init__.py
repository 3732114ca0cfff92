"""Believability interviews of a finished run, graded by rule or by a calibrated model judge.

:mod:`.interviews` runs the interviews (:func:`~.interviews.evaluate_run`) from the ground truth of
:mod:`.facts` and the questions of :mod:`.questions`; :mod:`.grading` and :mod:`.judge` grade the
answers (the judge is chosen by :mod:`.judge_choice` after :mod:`.judge_calibration`);
:mod:`.controls` and :mod:`.control_stats` score the negative controls; :mod:`.stats` aggregates;
:mod:`.plan_sense` audits the plans asked about; :mod:`.report` writes the files; :mod:`.ablation`
repeats it all under the paper's four architectures.
"""
