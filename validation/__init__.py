"""sieveopt.validation"""
