"""Tests of the 13.0 digit browser (chapter13.widgets.gallery): the pure selection, the view that
updates one figure in place, and the widget's page and digit controls."""

import io
import itertools

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image
from torchvision.utils import make_grid

from chapter13.widgets import gallery


@pytest.fixture(scope="module")
def digits():
    """60 distinguishable 28x28 images, six per class: image k is filled with the value k / 60."""
    y = torch.arange(60) % 10
    x = (torch.arange(60).float() / 60).view(60, 1, 1, 1).expand(60, 1, 28, 28).clone()
    return x, y


def test_digits_of_class_pages(digits):
    x, y = digits
    first = gallery.digits_of_class(x, y, 3, n=4, page=0)
    assert first.shape == (4, 1, 28, 28)
    torch.testing.assert_close(first[:, 0, 0, 0], torch.tensor([3, 13, 23, 33]) / 60)
    second = gallery.digits_of_class(x, y, 3, n=4, page=1)  # the last two of six
    torch.testing.assert_close(second[:, 0, 0, 0], torch.tensor([43, 53]) / 60)
    with pytest.raises(ValueError, match=r"digit must be 0\.\.9"):
        gallery.digits_of_class(x, y, 10)
    with pytest.raises(ValueError, match="n >= 1 and page >= 0"):
        gallery.digits_of_class(x, y, 3, n=0)


def test_view_updates_one_figure_in_place(digits):
    x, y = digits
    view = gallery.GalleryView(n=4)
    fig = view.update(x, y, 3, page=0)
    assert isinstance(fig, Figure)
    expected = make_grid(view.shown.add(1).div(2), nrow=gallery.NROW, padding=2, pad_value=1.0)[0].numpy()
    np.testing.assert_allclose(view.image.get_array(), expected, atol=1e-6)
    assert view.title.get_text() == "digit 3: 6 examples, page 0"
    axes, image = list(fig.axes), view.image
    again = view.update(x, y, 5, page=1)  # a short page: two digits, two white cells
    assert again is fig and list(fig.axes) == axes and view.image is image
    assert view.title.get_text() == "digit 5: 6 examples, page 1"
    torch.testing.assert_close(view.shown[:, 0, 0, 0], torch.tensor([45, 55]) / 60)
    grid = view.image.get_array()
    assert grid.shape == expected.shape
    np.testing.assert_allclose(grid[2:30, 2:30], (45 / 60 + 1) / 2, atol=1e-6)
    np.testing.assert_allclose(grid[2:30, 2 + 2 * 30 : 30 + 2 * 30], 1.0)  # third cell: empty, white


def test_figure_is_what_the_view_shows(digits):
    x, y = digits
    fig = gallery.gallery_figure(x, y, 7, n=4, page=1)
    text = fig.axes[0].get_title()
    assert text == "digit 7: 6 examples, page 1"
    view = gallery.GalleryView(n=4)
    view.update(x, y, 7, page=1)  # the last two sevens and two white cells
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), view.image.get_array())
    np.testing.assert_allclose(fig.axes[0].images[0].get_array()[2:30, 2:30], (47 / 60 + 1) / 2, atol=1e-6)


def test_browser_page_and_digit_controls_change_the_image(digits):
    x, y = digits
    box = gallery.digit_browser(x, y, n=2)
    assert box.controls["page"].max == 2  # six per class, two per page
    shown = [box.image.value]
    box.controls["page"].value = 2
    torch.testing.assert_close(box.view.shown[:, 0, 0, 0], torch.tensor([40, 50]) / 60)
    shown.append(box.image.value)
    box.controls["digit"].value = 9
    torch.testing.assert_close(box.view.shown[:, 0, 0, 0], torch.tensor([49, 59]) / 60)
    shown.append(box.image.value)
    pixels = [np.asarray(Image.open(io.BytesIO(png)).convert("L")) for png in shown]
    assert pixels[0].shape == pixels[1].shape == pixels[2].shape
    assert all(not np.array_equal(a, b) for a, b in itertools.pairwise(pixels))
