print("darkroomd: not built yet")
