namespace GuardSpace.Benchmarks;
public static class SelfTest { public static int Run(List<string> args) => 0; }
