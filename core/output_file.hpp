#pragma once
// Writing a result file (a report, an HTML page, a merged report) so that nothing is lost and
// nothing is replaced that should not be: the content goes to a new file beside the target, every
// write, flush and close is checked (a full disk is an error, never a short file), and only then
// is it renamed over the target. The target must be absent or a regular file: a device node or a
// directory is refused, and a symbolic link is refused unless the caller was asked to follow it
// (then the file it points to is replaced and the link stays). Errors carry the OS's reason.
#include <cstdio>
#include <string>
#include <string_view>

namespace pa {

/// Where a write to `path` lands: `path` itself, or with `follow_symlink` the file a symbolic link
/// at `path` resolves to. Throws InputError when `path` exists and is not a regular file (or a
/// link, followed, to one; or a link and `follow_symlink` is false).
std::string output_target(const std::string& path, bool follow_symlink);

/// Writes `content` to `path` atomically, as above. Throws InputError naming the file and the
/// OS's reason; the temporary file is removed on every failure.
void write_file_atomic(const std::string& path, std::string_view content, bool follow_symlink = false);

/// Removes a previous result at `path` (a regular file, or the file a followed link names) so a
/// run that dies leaves none standing. Refuses, like output_target, what it may not replace.
void remove_previous_output(const std::string& path, bool follow_symlink);

/// Opens `path` for writing, truncating it: created if absent, refused (InputError with the OS's
/// reason) when it is a link, a device or anything but a regular file.
std::FILE* open_output_stream(const std::string& path);

/// fputs + fflush of `text`, throwing InputError naming `path` and the OS's reason on failure.
void write_stream(std::FILE* f, std::string_view text, const std::string& path);

}  // namespace pa
