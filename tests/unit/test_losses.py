import torch
import torch.nn.functional as F

from server.learn.losses import (
    InfoNCE,
    SoftNegativeTriplet,
    make_loss,
    soft_negatives,
    word_presence_loss,
)


def unit(rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_soft_negative_is_farther_than_the_mean():
    torch.manual_seed(0)
    captions = F.normalize(torch.randn(32, 8), dim=1)
    distance = 1 - captions @ captions.T
    for seed in range(5):
        chosen = soft_negatives(captions, torch.Generator().manual_seed(seed))
        for i, j in enumerate(chosen.tolist()):
            others = torch.cat([distance[i, :i], distance[i, i + 1 :]])
            assert j != i
            assert distance[i, j] > others.mean()


def test_soft_negatives_are_random_among_the_eligible():
    # caption 0 has two far captions (2, 3) and one near (1): both far ones get drawn
    captions = unit([[1, 0], [0.99, 0.14], [-1, 0], [-0.99, -0.14]])
    drawn = {int(soft_negatives(captions, torch.Generator().manual_seed(s))[0]) for s in range(20)}
    assert drawn == {2, 3}


def test_soft_negative_falls_back_when_all_captions_are_equal():
    captions = unit([[1, 0]] * 4)
    chosen = soft_negatives(captions, torch.Generator().manual_seed(0))
    assert all(j != i for i, j in enumerate(chosen.tolist()))


def test_triplet_hinge_by_hand():
    images = unit([[1, 0], [0, 1]])
    captions = unit([[1, 0], [-1, 0]])
    # each caption's only other caption is the soft negative; margin 0.2
    # image 0: 0.2 - 1 + (-1) < 0 -> 0;  image 1: 0.2 - 0 + 0 = 0.2
    loss = SoftNegativeTriplet(margin=0.2)(images, captions)
    assert torch.isclose(loss, torch.tensor(0.1))


def test_infonce_by_hand_and_lower_for_matched_pairs():
    loss = InfoNCE(initial_temperature=1.0)
    images = unit([[1, 0], [0, 1]])
    matched = loss(images, unit([[1, 0], [0, 1]]))
    expected = -torch.log(torch.exp(torch.tensor(1.0)) / (torch.exp(torch.tensor(1.0)) + 1))
    assert torch.isclose(matched, expected)
    swapped = loss(images, unit([[0, 1], [1, 0]]))
    assert swapped > matched


def test_make_loss_names():
    assert isinstance(make_loss("infonce"), InfoNCE)
    assert isinstance(make_loss("soft-triplet"), SoftNegativeTriplet)
    try:
        make_loss("hinge")
    except ValueError as error:
        assert "infonce" in str(error)
    else:
        raise AssertionError("unknown loss accepted")


def test_word_presence_loss_matches_a_loop_and_prefers_the_right_words():
    generator = torch.Generator().manual_seed(0)
    images = F.normalize(torch.randn(3, 4, generator=generator), dim=1)
    words = F.normalize(torch.randn(5, 4, generator=generator), dim=1)
    present = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.float)
    expected = []
    for image, row in zip(images, present, strict=True):
        log_probs = torch.log_softmax(10.0 * words @ image, dim=0)
        positives = [log_probs[j] for j in range(5) if row[j]]
        expected.append(-sum(positives) / max(len(positives), 1) if positives else
                        torch.tensor(0.0))
    loss = word_presence_loss(images, words, present, scale=10.0)
    torch.testing.assert_close(loss, torch.stack(expected).mean())
    # an image placed on its words costs less than one placed elsewhere
    on_words = F.normalize(words[0] + words[2], dim=0)[None]
    away = F.normalize(-(words[0] + words[2]), dim=0)[None]
    assert word_presence_loss(on_words, words, present[:1]) < \
        word_presence_loss(away, words, present[:1])
