"""bench.hole_distance: squared errors of the missing pixels binned by distance to known pixels."""

import numpy as np

from bench import hole_distance


def test_errors_fall_in_the_bin_of_their_distance():
    # One row of 12 pixels, known only at x = 0: pixel x lies x pixels from it.
    known = np.zeros((1, 1, 12), bool)
    known[0, 0, 0] = True
    distance = hole_distance.distance_to_known(known)
    np.testing.assert_array_equal(distance[0, 0], np.arange(12))
    truth = np.zeros((1, 1, 12, 3), np.uint8)
    fill = np.zeros_like(truth)
    fill[0, 0, :, 0] = np.arange(12) * 3  # error in one channel: squared 9 x^2, / 3 channels
    got = hole_distance.error_by_distance(fill, truth, distance)
    # Bins 1 | 2 | 3-4 | 5-8 | 9-11: means of 3 x^2 over each bin's x.
    expected = [3 * np.mean(np.square(xs)) for xs in ([1], [2], [3, 4], [5, 6, 7, 8], [9, 10, 11])]
    np.testing.assert_allclose(got, expected)
