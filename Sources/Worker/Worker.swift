// Worker: see the module's other files.
