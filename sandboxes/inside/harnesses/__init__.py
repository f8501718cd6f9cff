"""Each suite's harness: how the program is loaded in its process (`load`, program side) and what the tests'
namespace holds in the judge's (`judge`), or for suites whose tests must share the program's process, how that one
process runs them (`shared`). A task names its harness; `module` is the default."""
