"""bandwidth"""
