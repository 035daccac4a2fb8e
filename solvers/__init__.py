"""sieveopt.solvers"""
