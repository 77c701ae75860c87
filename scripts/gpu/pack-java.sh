#!/usr/bin/env bash
# Prepares what the GPU machine needs to run the Java tests and the CLI there (it has no Java and
# no Maven): a Java runtime made with jlink and the jars built here, in .device/ (ignored by git;
# name it in the device call's carry list).
#   scripts/gpu/pack-java.sh        # after `mvn -B verify` (or package) here
# The work tree and .device must fit the device tool's 64 MiB together: scripts/gpu/aside.sh
# moves the earlier sessions' raw logs (and the JMH jar) out of the tree for the call and back.
set -euo pipefail
cd "$(dirname "$0")/../.."
JDK=${JDK25:-/usr/lib/jvm/temurin-25-jdk-amd64}
mkdir -p .device
if [ ! -f .device/jre.tar.xz ]; then
  rm -rf /tmp/lora4j-jre
  # java.xml is left out (nothing here reads XML; GoldenTest through the JUnit console launcher,
  # `train` and `init-model` run without it): 1.9 MB less in the archive
  "$JDK/bin/jlink" --add-modules java.base,jdk.unsupported,java.logging,java.management \
    --output /tmp/lora4j-jre --strip-debug --no-man-pages --no-header-files
  # the runtime's native libraries without their symbol tables (~1 MB less in the archive): the
  # runtime, the jars and the work tree must fit the device tool's 64 MiB together (with the
  # test classes and the JUnit launcher for STEPS=java: ~63.7 MiB in the tenth session)
  find /tmp/lora4j-jre -name "*.so" -exec strip --strip-unneeded {} +
  tar -C /tmp -cJf .device/jre.tar.xz lora4j-jre
fi
cli=$(ls java/target/lora4j-*-cli.jar | head -1)
# The GPU machine loads the CUDA plugin from the jar: one built with the plugin configured off
# (java/target/native-build configured with -DLORA4J_CUDA=OFF) fails every GPU test there.
entries=$("$JDK/bin/jar" --list --file "$cli")
if ! grep -q 'liblora4j_cuda\.so$' <<< "$entries"; then
  echo "pack-java: $cli has no liblora4j_cuda.so (java/target/native-build configured without" \
    "CUDA?): rm -rf java/target/native-build, then mvn package again" >&2
  exit 1
fi
cp "$cli" .device/lora4j-cli.jar
# The JMH benchmarks jar (STEPS=ops runs OpBenchmark with it), when the benchmarks module is built.
if [ -f benchmarks/target/benchmarks.jar ]; then cp benchmarks/target/benchmarks.jar .device/benchmarks.jar; fi
# Test classes (without the fixtures, which travel in the work tree) as one jar (0.37 MB against
# 0.82 MB of loose classes) and the JUnit launcher.
rm -rf .device/test-classes .device/test-classes.jar /tmp/lora4j-test-classes
mkdir -p /tmp/lora4j-test-classes
(cd java/target/test-classes && find . -name '*.class' -exec cp --parents {} /tmp/lora4j-test-classes/ \;)
"$JDK/bin/jar" --create --file .device/test-classes.jar -C /tmp/lora4j-test-classes .
V=6.1.3
M2=${HOME}/.m2/repository/org/junit/platform/junit-platform-console-standalone/$V
[ -f "$M2/junit-platform-console-standalone-$V.jar" ] || \
  mvn -B -q dependency:get -Dartifact=org.junit.platform:junit-platform-console-standalone:$V
cp "$M2/junit-platform-console-standalone-$V.jar" .device/junit-console.jar
du -sh .device/*
