"""One module per task, each named after its data set as its class is (``imdb.py`` holds
``IMDBDataModule``); what two tasks share lives one level up, in ``pspikessm.data``.

Configs name the classes through ``pspikessm.data`` (``pspikessm.data.ListOpsDataModule``);
this package exports nothing itself, so importing one task never imports the others.
"""
