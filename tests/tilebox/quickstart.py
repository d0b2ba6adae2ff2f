# The reference's quickstart ("Run a Workflow", docs.tilebox.com/quickstart) as it is published, but for the
# client's url, token and transport (taken from the command line here) and the last line, which prints the
# job's state for the test. It has no `if __name__ == "__main__":` guard, as published: the SDK's runner spawns
# a process that runs this module's top level once more (it submits and runs a second job, then fails to
# start its own renewer), against Tilebox and taskfleet alike.
import sys

from tilebox.workflows import Client, Runner, Task
from tilebox.workflows.observability.logging import configure_console_logging

configure_console_logging()

# Replace with your actual token
client = Client(
    url=sys.argv[sys.argv.index("--url") + 1], token=sys.argv[sys.argv.index("--token") + 1], transport="http1"
)


class HelloWorldTask(Task):
    greeting: str = "Hello"
    name: str = "World"

    def execute(self, context):
        context.logger.info(f"{self.greeting} {self.name}, from the main task!")
        context.submit_subtask(HelloSubtask(name=self.name))


class HelloSubtask(Task):
    name: str

    def execute(self, context):
        context.logger.info("Hello from the subtask!", name=self.name)


# Initiate the job
jobs = client.jobs()
job = jobs.submit("parameterized-hello-world", HelloWorldTask(greeting="Greetings", name="Universe"))

# Run the tasks
runner = Runner(tasks=[HelloWorldTask, HelloSubtask])
runner.connect_to(client).run_all()

print("Explore the job you just submitted in the Tilebox Console.")
print("Check out tasks, log messages, and execution timining:")
print(f"https://console.tilebox.com/workflows/jobs/{job.id}")
print("STATE", job.id, client.jobs().find(job).state.name)
