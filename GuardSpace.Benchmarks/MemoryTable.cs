namespace GuardSpace.Benchmarks;
public static class MemoryTable { public static void Run(List<string> args) { } }
