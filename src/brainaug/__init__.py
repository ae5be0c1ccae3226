"""brainaug: does GAN-synthesized brain MRI help a dementia classifier?"""

__version__ = "0.1.0"
