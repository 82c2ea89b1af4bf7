"""Home of the ``lossylearn study urdc`` command line only; the study is :mod:`lossylearn.studies.urdc`."""
