"""Losses shared across methods (torch)."""

from __future__ import annotations

from microrestore.losses.basic import GANLoss, l1, lsgan_loss, mse, mse_ssim_loss, ssim, ssim_loss

__all__ = ["GANLoss", "l1", "lsgan_loss", "mse", "mse_ssim_loss", "ssim", "ssim_loss"]
