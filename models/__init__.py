"""sieveopt.models"""
