"""Releases: the format a build writes and every reader (push, train, refine) reads through this package."""

from codelutra_data.builders.release.read import (DATA_DIR, PAIR_CONFIGS, Release, build_info, pair_files,
                                                  read_release, release_stats, task_outcomes)
from codelutra_data.builders.release.versions import (choose_version, local_versions, next_version, parse_version,
                                                      previous_tag, tag_version)
from codelutra_data.builders.release.write import (CONFIG_TEXT, SCHEMAS, Streamed, card_metadata, pairs_schema,
                                                   sample_row, write_release)

__all__ = ["CONFIG_TEXT", "DATA_DIR", "PAIR_CONFIGS", "Release", "SCHEMAS", "build_info", "card_metadata",
           "choose_version", "local_versions", "next_version", "pair_files", "pairs_schema", "parse_version",
           "previous_tag", "read_release", "release_stats", "sample_row", "Streamed", "tag_version",
           "task_outcomes", "write_release"]
