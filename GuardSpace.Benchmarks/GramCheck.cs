namespace GuardSpace.Benchmarks;
public static class GramCheck { public static int Run(List<string> args) => 0; }
