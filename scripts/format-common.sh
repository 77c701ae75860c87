# Shared by scripts/format.sh and scripts/check-format.sh: the formatters and the files they own.
# C, C++, CUDA: clang-format (Debian's, .clang-format at the root); Java: google-java-format 1.28.0
# (from Maven Central, run on the JDK).
GJF_VERSION=1.28.0
GJF_JAR=${HOME}/.m2/repository/com/google/googlejavaformat/google-java-format/$GJF_VERSION/google-java-format-$GJF_VERSION-all-deps.jar
format_tools() {
  command -v clang-format >/dev/null || { echo "clang-format is missing (apt-get install clang-format)"; return 1; }
  if [ ! -f "$GJF_JAR" ]; then
    mvn -B -q -ntp dependency:get \
      -Dartifact=com.google.googlejavaformat:google-java-format:$GJF_VERSION:jar:all-deps >/dev/null
  fi
}
gjf() {
  java --add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED \
    --add-exports=jdk.compiler/com.sun.tools.javac.code=ALL-UNNAMED \
    --add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED \
    --add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED \
    --add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED \
    --add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED \
    -jar "$GJF_JAR" "$@"
}
# tracked files and new ones not yet added (but not ignored), so a new file is formatted too
native_files() {
  git ls-files --cached --others --exclude-standard 'native/*.cpp' 'native/*.h' 'native/*.cu' \
    'native/*.cuh'
}
java_files() { git ls-files --cached --others --exclude-standard '*.java'; }
