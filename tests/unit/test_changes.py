"""A diff cut into files: what the details panel lists."""

from inspect_app.control.changes import MAX_PATCH, files_of

DIFF = """ README.md | 3 ++-
 app.py    | 2 ++
 old.txt   | 1 -
 3 files changed, 4 insertions(+), 2 deletions(-)

diff --git a/README.md b/README.md
index 1111111..2222222 100644
--- a/README.md
+++ b/README.md
@@ -1,2 +1,3 @@
 # demo
-old line
+new line
+--- not a header, an added line starting with dashes
diff --git a/app.py b/app.py
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/app.py
@@ -0,0 +1,2 @@
+print("hi")
+-1
diff --git a/old.txt b/old.txt
deleted file mode 100644
index 4444444..0000000
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-gone
diff --git a/logo.png b/logo.png
index 5555555..6666666 100644
Binary files a/logo.png and b/logo.png differ
diff --git a/a.txt b/b.txt
similarity index 100%
rename from a.txt
rename to b.txt
"""


def test_a_diff_is_cut_into_files_with_their_counts() -> None:
    files = files_of(DIFF)
    assert [(f.path, f.status, f.added, f.removed) for f in files] == [
        ("README.md", "modified", 2, 1),
        ("app.py", "added", 2, 0),
        ("old.txt", "deleted", 0, 1),
        ("logo.png", "binary", 0, 0),
        ("b.txt", "renamed", 0, 0),
    ]
    assert files[0].patch.startswith("diff --git a/README.md") and files[0].patch.endswith("with dashes")
    assert "app.py" not in files[0].patch


def test_no_changes_no_files_and_a_huge_patch_is_cut() -> None:
    assert files_of("") == [] and files_of(" 0 files changed\n") == []
    huge = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n" + "+y\n" * 20_000
    (only,) = files_of(huge)
    assert only.added == 20_000 and len(only.patch) < MAX_PATCH + 100 and only.patch.endswith("sandbox)")


def test_a_diff_of_thousands_of_files_lists_the_first_and_says_how_many_more() -> None:
    from inspect_app.control.changes import MAX_FILES

    many = "".join(
        f"diff --git a/v/{n}.js b/v/{n}.js\n--- a/v/{n}.js\n+++ b/v/{n}.js\n@@ -0,0 +1 @@\n+x\n" for n in range(1000)
    )
    files = files_of(many)
    assert len(files) == MAX_FILES and files[0].path == "v/0.js"
    assert files[-1].path == f"… and {1000 - MAX_FILES + 1} more files" and files[-1].status == "omitted"
