from audiogen.data.fma import index_fma, read_tracks
from audiogen.data.report import IndexReport

from .conftest import needs_ffmpeg


@needs_ffmpeg
def test_fma_index_captions_splits_and_broken(fma_root):
    report: IndexReport = index_fma(fma_root, progress=False)
    by_id = {int(i.path.rsplit("/", 1)[-1].split(".")[0]): i for i in report.items}
    assert sorted(by_id) == [2, 140, 1482]
    food = by_id[2]
    assert food.split == "train" and food.genre == "Hip-Hop" and food.title == "Food"
    assert (
        "Hip-Hop" in food.description and "AWOL" in food.description and "chill" in food.description
    )
    assert 1.9 < food.duration < 2.2 and food.sample_rate == 22050 and food.channels == 1
    wires = by_id[140]
    assert wires.split == "valid" and "Punk" in wires.description and "Rock" in wires.description
    assert by_id[1482].split == "test" and by_id[1482].genre == "Electronic"
    assert [s.path.endswith("001483.mp3") for s in report.skipped] == [True]


def test_tracks_csv_three_row_header(fma_root):
    tracks = read_tracks(fma_root / "fma_metadata/tracks.csv", {21: "Hip-Hop"})
    assert set(tracks) == {2, 140, 1482, 5}
    assert tracks[2].artist == "AWOL" and tracks[2].tags == ["chill", "lo-fi"]
    assert tracks[2].genres == ["Hip-Hop"] and tracks[140].split == "valid"
