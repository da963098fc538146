// Jobs: see the module's other files.
