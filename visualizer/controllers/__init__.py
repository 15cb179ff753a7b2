"""Plain QObjects that each own one job of the window: telling the user things, settings, files,
sampling, exporting, training, presentation mode and the IF dock's runs. Widgets talk to them and
to the session, never to each other."""
